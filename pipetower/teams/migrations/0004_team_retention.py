from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0003_team_deletion_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="team",
            name="run_retention_days",
            field=models.PositiveIntegerField(default=90, verbose_name="run history period (days)"),
        ),
        migrations.AddField(
            model_name="team",
            name="output_limit_bytes",
            field=models.PositiveBigIntegerField(
                blank=True, null=True, verbose_name="output kept per server (bytes)"
            ),
        ),
    ]
