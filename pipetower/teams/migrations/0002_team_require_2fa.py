from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="team",
            name="require_2fa",
            field=models.BooleanField(
                default=False, verbose_name="require two-factor authentication"
            ),
        ),
    ]
