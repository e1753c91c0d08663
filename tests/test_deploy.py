"""The systemd units in deploy/systemd pass `systemd-analyze verify`; the Prometheus alert rules pass
their unit tests under `promtool test rules`. Each check is skipped, saying why, without the tool."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "deploy" / "systemd"
PROMETHEUS = ROOT / "deploy" / "prometheus"
UNITS = ("oneyearago.service", "oneyearago-dashboard.service", "oneyearago-once.service", "oneyearago-once.timer")
INSTALLED = "/usr/local/bin/oneyearago"


def _directives(name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_run_service_is_a_hardened_notify_service_with_a_watchdog():
    unit = _directives("oneyearago.service")
    for key, value in {"Type": "notify", "Restart": "on-failure", "ExecStart": f"{INSTALLED} run",
                       "EnvironmentFile": "/etc/oneyearago/env", "StateDirectory": "oneyearago",
                       "ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes",
                       "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
                       "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "DynamicUser": "yes"}.items():
        assert unit.get(key) == [value], key
    assert int(unit["WatchdogSec"][0]) > 0
    assert "ONEYEARAGO_DATABASE_URL=sqlite:////var/lib/oneyearago/queue.db" in unit["Environment"]
    assert "@system-service" in unit["SystemCallFilter"]


def test_the_dashboard_and_the_timer_share_the_state_directory():
    for name in ("oneyearago-dashboard.service", "oneyearago-once.service"):
        unit = _directives(name)
        assert unit["StateDirectory"] == ["oneyearago"], name
        assert "ONEYEARAGO_DATABASE_URL=sqlite:////var/lib/oneyearago/queue.db" in unit["Environment"], name
        assert unit["ProtectSystem"] == ["strict"], name
    users = {tuple(_directives(name)["User"]) for name in UNITS if name.endswith(".service")}
    assert users == {("oneyearago",)}  # one dynamic user for the three: they share the queue file
    assert _directives("oneyearago-once.service")["ExecStart"] == [f"{INSTALLED} run --once"]
    assert _directives("oneyearago-once.timer")["Unit"] == ["oneyearago-once.service"]


def _verify(folder: Path, names: list[str]) -> tuple[int, str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    done = subprocess.run([tool, "verify", "--man=no", *(f"./{n}" for n in names)], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def _copies(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at this venv's `oneyearago` (verify wants an executable there)."""
    binary = Path(sys.executable).parent / "oneyearago"
    if not binary.exists():
        pytest.skip(f"{binary} is not installed (pip install -e .)")
    for name in UNITS:
        text = (SYSTEMD / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(INSTALLED, str(binary)), encoding="utf-8")
    return tmp_path


def test_systemd_analyze_verify_accepts_every_unit(tmp_path):
    folder = _copies(tmp_path)
    code, output = _verify(folder, list(UNITS))
    complaints = [line for line in output.splitlines() if "oneyearago" in line]
    assert code == 0 and not complaints, output


def test_systemd_analyze_verify_catches_a_misspelt_directive(tmp_path):
    """The check above can fail: verify reports an unknown key (on stderr, with status 0)."""
    folder = _copies(tmp_path)
    unit = folder / "oneyearago.service"
    unit.write_text(unit.read_text(encoding="utf-8").replace("ProtectSystem=", "ProtectSystm="), encoding="utf-8")
    code, output = _verify(folder, ["oneyearago.service"])
    assert "ProtectSystm" in output


def test_promtool_passes_the_alert_rules_unit_tests():
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    check = subprocess.run([tool, "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    done = subprocess.run([tool, "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_promtool_fails_a_rule_test_that_expects_the_wrong_alert(tmp_path):
    """The check above can fail: a test expecting an alert that the rules do not fire is reported."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "wrong_test.yml").write_text("""\
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'oneyearago_platform_paused{platform="x"}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: PlatformPaused
        exp_alerts:
          - exp_labels: {severity: critical, platform: x}
""", encoding="utf-8")
    done = subprocess.run([tool, "test", "rules", "wrong_test.yml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0, done.stdout + done.stderr


def test_the_alert_rules_use_only_metrics_that_metrics_exposes(tmp_path):
    """The rules and /metrics agree on names: a rule over a metric nobody exposes never fires."""
    import re

    from prometheus_client.parser import text_string_to_metric_families

    from bot.config import load_settings
    from bot.metrics import exposition, registry
    from bot.store import Store

    settings = load_settings({"database_url": f"sqlite:///{tmp_path / 'queue.db'}"}, environ={}, env_file=None)
    store = Store(settings.database_url)
    try:
        body, _ = exposition(registry(store, settings))
    finally:
        store.dispose()
    exposed = set()
    for family in text_string_to_metric_families(body.decode()):
        exposed.add(family.name)
        exposed.update(sample.name for sample in family.samples)
    rules = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    used = set(re.findall(r"\boneyearago_[a-z_]+", rules))
    assert used and used <= exposed, f"alert rules use metrics /metrics does not expose: {sorted(used - exposed)}"
