from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns

from pipetower.accounts.google.provider import GoogleProvider

urlpatterns = default_urlpatterns(GoogleProvider)
