"""On PostgreSQL, tell the web processes' live-output watchers that a run changed.

A trigger on the run and target tables sends `NOTIFY pipetower_live, '<run id>'`
when a run's status or revision, or a target's status, revision or last output
sequence changes (pipetower/actions/live.py listens). PostgreSQL folds identical
notifications of one transaction into one, so a batch of writes is one wake-up.
Nothing happens on SQLite: there, each web process polls.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION pipetower_live_notify() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'actions_run' THEN
        PERFORM pg_notify('pipetower_live', NEW.id::text);
    ELSE
        PERFORM pg_notify('pipetower_live', NEW.run_id::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS pipetower_live_run ON actions_run;
CREATE TRIGGER pipetower_live_run AFTER UPDATE ON actions_run FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.revision IS DISTINCT FROM NEW.revision)
    EXECUTE FUNCTION pipetower_live_notify();

DROP TRIGGER IF EXISTS pipetower_live_target ON actions_runtarget;
CREATE TRIGGER pipetower_live_target AFTER UPDATE ON actions_runtarget FOR EACH ROW
    WHEN (OLD.last_seq IS DISTINCT FROM NEW.last_seq OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.revision IS DISTINCT FROM NEW.revision)
    EXECUTE FUNCTION pipetower_live_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS pipetower_live_run ON actions_run;
DROP TRIGGER IF EXISTS pipetower_live_target ON actions_runtarget;
DROP FUNCTION IF EXISTS pipetower_live_notify();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("actions", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
