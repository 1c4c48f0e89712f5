from django.urls import path

from pipetower.servers import views

app_name = "servers"
urlpatterns = [
    path("", views.server_list, name="list"),
    path("new/", views.server_add, name="add"),
    path("import/", views.server_import, name="import"),
    path("tags/", views.server_tags_bulk, name="tags_bulk"),
    path("host-keys/", views.server_host_keys, name="host_keys"),
    path("host-keys/fetch/", views.server_host_keys_fetch, name="host_keys_fetch"),
    path("host-keys/pin/", views.server_host_keys_pin, name="host_keys_pin"),
    path("ssh-key/", views.team_key, name="team_key"),
    path("ssh-key/create/", views.team_key_create, name="key_create"),
    path("ssh-key/rotate/", views.team_key_rotation_start, name="key_rotation_start"),
    path("ssh-key/rotate/finish/", views.team_key_rotation_finish, name="key_rotation_finish"),
    path("ssh-key/rotate/cancel/", views.team_key_rotation_cancel, name="key_rotation_cancel"),
    path("settings/", views.server_settings, name="settings"),
    path("<int:server_id>/", views.server_detail, name="detail"),
    path("<int:server_id>/edit/", views.server_edit, name="edit"),
    path("<int:server_id>/delete/", views.server_delete, name="delete"),
    path("<int:server_id>/check/", views.server_check, name="check"),
    path("<int:server_id>/host-key/pin/", views.server_pin, name="pin"),
    path("<int:server_id>/host-key/repin/", views.server_repin, name="repin"),
    path("<int:server_id>/host-key/paste/", views.server_paste_host_key, name="paste_host_key"),
]
