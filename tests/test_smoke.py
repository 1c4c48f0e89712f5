def test_healthz_answers_json_with_database_status(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["status"] == "ok"
    assert body["worker"]["status"] == "unknown"


def test_a_pipetower_process_starts_without_asyncssh_dsa_warnings():
    """`pipetower serve` starts several processes; none prints cryptography's DSA
    deprecation notices that importing asyncssh triggers. Other warnings still show."""
    import subprocess
    import sys

    code = "import warnings, pipetower, asyncssh; warnings.warn('still shown', UserWarning)"
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True
    )

    assert "DSA is deprecated" not in done.stderr
    assert "still shown" in done.stderr
