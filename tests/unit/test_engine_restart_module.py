"""docker_engine_restart as Ansible runs it: bad options are refused before
it reads the host, and check mode restarts nothing. The restart itself,
under load and with an engine that does not come back, is in
tests/faults/test_faults_rollout.py."""

from modrun import run_module


def test_bad_options_are_refused_before_anything_is_read(tmp_path):
    result = run_module("docker_engine_restart", tmp_path, {"wait_timeout": 0, "lock_timeout": -1, "service": "docker;reboot"})
    assert result["failed"] is True
    assert len(result["errors"]) == 3, result
    assert "restarted" not in result


def test_check_mode_plans_and_restarts_nothing(tmp_path):
    upstreams = tmp_path / "upstreams"
    upstreams.mkdir()
    args = {"switch_dir": str(upstreams), "state_dir": str(tmp_path / "state"), "docker_host": "unix:///nonexistent.sock"}
    result = run_module("docker_engine_restart", tmp_path, dict(args, _ansible_diff=True), check=True)
    assert result["changed"] is True and result["restarted"] is False and result["bridged"] == [], result
    assert result["diff"]["after"].startswith("docker: restarted")
    assert not (tmp_path / "state").exists()
