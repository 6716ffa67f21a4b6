"""Settings: every mistake stops start-up with one line naming the setting; good values arrive parsed."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from tests.support import ACCOUNT_SID, AUTH_TOKEN, DISPATCH, LINE, PUBLIC
from voice import create_app
from voice.config import SETTINGS, ConfigError, defaults, load_settings
from voice.hours import Hours

ROOT = Path(__file__).resolve().parent.parent

REQUIRED = {
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_PHONE_NUMBER": LINE,
    "DISPATCH_TRANSFER_NUMBER": DISPATCH,
    "PUBLIC_BASE_URL": PUBLIC,
    "SECRET_KEY": "test-secret",
    "RETENTION_DAYS": "365",
}


def load(**extra) -> dict:
    return load_settings({**REQUIRED, **extra})


def refusal(**extra) -> str:
    with pytest.raises(ConfigError) as caught:
        load(**extra)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_misspelt_boolean_stops_start_up_with_one_line_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("CALLBACK_SMS", "ture")
    with pytest.raises(SystemExit) as stopped:
        create_app(dict(REQUIRED))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("mediation-line: setting CALLBACK_SMS must be true or false")
    assert "'ture'" in err


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("TRUE", True), ("1", True), ("Yes", True), ("on", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("OFF", False), (" off ", False),
    (True, True), (False, False),
])
def test_booleans_read_every_common_spelling(text, expected):
    assert load(CALLBACK_SMS=text)["CALLBACK_SMS"] is expected


@pytest.mark.parametrize("text", ["ture", "", "2", "enabled", "nope"])
def test_anything_else_is_not_a_boolean(text):
    assert refusal(CALLBACK_SMS=text).startswith("setting CALLBACK_SMS must be true or false")


def test_defaults_parse_into_their_types():
    settings = load()
    assert settings["CALLBACK_RETRY_MINUTES"] == [10, 30, 120]
    assert settings["REST_RETRY_SECONDS"] == [5, 30, 120]
    assert settings["SMS_RETRY_SECONDS"] == [30, 120]
    assert settings["CALLBACK_COUNTRIES"] == ("US",)
    assert settings["HOLD_MAX_MINUTES"] == 10
    assert settings["CALLBACK_SMS"] is True
    assert settings["TIMEZONE"] == defaults()["TIMEZONE"]
    assert settings["HOLIDAYS"] == frozenset()
    assert settings["OPEN_HOURS_TEXT"] == ""
    assert isinstance(settings["OPEN_HOURS"], Hours)
    assert settings["OPEN_HOURS"].is_open(datetime(2025, 12, 25, 3, 0))  # empty: always open
    assert settings["PROGRAM_HOURS"] == defaults()["PROGRAM_HOURS"]
    assert settings["PROGRAM_HOURS_ES"] == defaults()["PROGRAM_HOURS_ES"]


def test_list_settings_read_spaces_and_given_lists():
    settings = load(CALLBACK_RETRY_MINUTES=" 5 , 15,", SMS_RETRY_SECONDS="0, 60", REST_RETRY_SECONDS=[1, 2],
                    CALLBACK_COUNTRIES="us, ca")
    assert settings["CALLBACK_RETRY_MINUTES"] == [5, 15]
    assert settings["SMS_RETRY_SECONDS"] == [0, 60]
    assert settings["REST_RETRY_SECONDS"] == [1, 2]
    assert settings["CALLBACK_COUNTRIES"] == ("US", "CA")


@pytest.mark.parametrize(("name", "value"), [
    ("CALLBACK_RETRY_MINUTES", "10,soon"),
    ("CALLBACK_RETRY_MINUTES", "0,30"),
    ("CALLBACK_RETRY_MINUTES", ","),
    ("REST_RETRY_SECONDS", "5;30"),
    ("REST_RETRY_SECONDS", "-1"),
    ("SMS_RETRY_SECONDS", "30,two minutes"),
    ("SMS_RETRY_SECONDS", ""),
    ("CALLBACK_COUNTRIES", "US,XX"),
    ("CALLBACK_COUNTRIES", "USA"),
    ("CALLBACK_COUNTRIES", ""),
])
def test_a_bad_list_names_its_setting(name, value):
    assert refusal(**{name: value}).startswith(f"setting {name} must list ")


@pytest.mark.parametrize("value", ["0", "-3", "ten", "2.5"])
def test_hold_max_minutes_is_a_positive_whole_number(value):
    assert refusal(HOLD_MAX_MINUTES=value).startswith("setting HOLD_MAX_MINUTES must be")


def test_hold_max_minutes_is_read():
    assert load(HOLD_MAX_MINUTES="4")["HOLD_MAX_MINUTES"] == 4


def test_open_hours_and_holidays_become_one_hours_object():
    settings = load(OPEN_HOURS="mon-fri 08:00-20:00; sat 10:00-16:00", HOLIDAYS="2025-12-25; 2026-01-01,2026-07-03",
                    TIMEZONE="America/Chicago")
    hours = settings["OPEN_HOURS"]
    assert settings["OPEN_HOURS_TEXT"] == "mon-fri 08:00-20:00; sat 10:00-16:00"
    assert settings["HOLIDAYS"] == {date(2025, 12, 25), date(2026, 1, 1), date(2026, 7, 3)}
    assert hours.timezone == "America/Chicago" and hours.holidays == settings["HOLIDAYS"]
    assert hours.is_open(datetime(2025, 12, 24, 14, 0))      # Wednesday 8 a.m. in Chicago
    assert not hours.is_open(datetime(2025, 12, 24, 13, 59))
    assert not hours.is_open(datetime(2025, 12, 25, 18, 0))  # Christmas


def test_program_hours_are_written_from_open_hours():
    settings = load(OPEN_HOURS="mon-fri 08:00-20:00; sat 10:00-16:00")
    assert settings["PROGRAM_HOURS"] == "Monday to Friday, 8 a.m. to 8 p.m.; Saturday, 10 a.m. to 4 p.m."
    assert settings["PROGRAM_HOURS_ES"] == ("de lunes a viernes, de 8 de la mañana a 8 de la noche; "
                                            "sábado, de 10 de la mañana a 4 de la tarde")


def test_program_hours_given_explicitly_are_kept(monkeypatch):
    monkeypatch.setenv("PROGRAM_HOURS_ES", "de lunes a sábado")
    settings = load(OPEN_HOURS="mon-sat 09:00-17:00", PROGRAM_HOURS="weekdays and Saturdays")
    assert settings["PROGRAM_HOURS"] == "weekdays and Saturdays"
    assert settings["PROGRAM_HOURS_ES"] == "de lunes a sábado"


@pytest.mark.parametrize("text", ["mon-fri 8-20", "xyz 08:00-09:00", "mon 09:00-08:00", "08:00-20:00",
                                  "mon-fri", "mon 22:00-06:00", "mon 08:00-25:00"])
def test_bad_open_hours_stop_start_up(text):
    assert refusal(OPEN_HOURS=text).startswith("setting OPEN_HOURS is invalid: ")


@pytest.mark.parametrize("text", ["2025-12-32", "12/25/2025", "2025-12-25 2026-01-01", "christmas"])
def test_bad_holidays_stop_start_up(text):
    assert refusal(HOLIDAYS=text).startswith("setting HOLIDAYS is invalid: ")


def test_a_bad_time_zone_is_named_before_the_hours_are_read():
    assert refusal(TIMEZONE="Mars/Olympus", OPEN_HOURS="mon 08:00-09:00").startswith("setting TIMEZONE")


def test_a_missing_required_setting_is_named():
    with pytest.raises(ConfigError, match="missing required setting SECRET_KEY"):
        load_settings({**REQUIRED, "SECRET_KEY": ""})


def test_production_must_choose_how_long_personal_data_is_kept(monkeypatch, capsys):
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    https = {name: value for name, value in REQUIRED.items() if name != "RETENTION_DAYS"}
    with pytest.raises(SystemExit) as stopped:
        create_app(https)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mediation-line: missing required setting RETENTION_DAYS")
    with pytest.raises(ConfigError, match="missing required setting RETENTION_DAYS"):
        load_settings({**https, "RETENTION_DAYS": " "})
    monkeypatch.setenv("RETENTION_DAYS", "90")
    assert load_settings(https)["RETENTION_DAYS"] == 90


def test_retention_defaults_to_a_year_off_https_and_is_a_positive_whole_number(monkeypatch):
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    local = {name: value for name, value in REQUIRED.items() if name != "RETENTION_DAYS"}
    assert load_settings({**local, "PUBLIC_BASE_URL": "http://127.0.0.1:5000"})["RETENTION_DAYS"] == 365
    assert refusal(RETENTION_DAYS="a year").startswith("setting RETENTION_DAYS must be a whole number")
    assert refusal(RETENTION_DAYS="0").startswith("setting RETENTION_DAYS must be greater than zero")


@pytest.mark.parametrize(("value", "expected"), [
    ("", ()), ("coordinator", ("coordinator",)), (" Coordinator, specialist ", ("coordinator", "specialist")),
    (["coordinator"], ("coordinator",)), ([], ()),
])
def test_roles_that_need_two_factor_sign_in(value, expected):
    assert load(REQUIRE_2FA_FOR=value)["REQUIRE_2FA_FOR"] == expected


def test_two_factor_is_required_of_nobody_by_default():
    assert load()["REQUIRE_2FA_FOR"] == ()


@pytest.mark.parametrize("value", ["admin", "coordinator,admin", "coordinators"])
def test_an_unknown_role_for_two_factor_is_refused(value):
    message = refusal(REQUIRE_2FA_FOR=value)
    assert message.startswith("setting REQUIRE_2FA_FOR must list roles (coordinator or specialist)")
    assert repr(value) in message


def test_settings_come_from_the_env_file_of_the_directory_the_line_runs_in(tmp_path):
    (tmp_path / ".env").write_text("TWILIO_ACCOUNT_SID=AC" + "0" * 32 + "\nTWILIO_AUTH_TOKEN=x\n"
                                   "TWILIO_PHONE_NUMBER=+19375550100\nDISPATCH_TRANSFER_NUMBER=+19375550911\n"
                                   "PUBLIC_BASE_URL=http://127.0.0.1:5000\nSECRET_KEY=s\nPROGRAM_NAME='Dayton Mediation'\n")
    script = "from voice import create_app; print(create_app().config['PROGRAM_NAME'])"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Dayton Mediation"


def test_env_example_and_the_settings_page_are_written_from_the_registry():
    """Every setting, its default and its help appear in .env.example and docs/settings.md as the registry says."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "settings_reference.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    example = (ROOT / ".env.example").read_text()
    assert all(f"{setting.name}=" in example for setting in SETTINGS)
