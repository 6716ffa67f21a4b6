"""Languages as data: a program adds Arabic with a file (docs/examples/ar.toml), no code; the greeting offers it in
one more sentence, a call is served in it, a bad file stops start-up naming what is wrong."""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring

from tests.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALLER,
    DISPATCH,
    LINE,
    PUBLIC,
    fresh_app,
    load_call,
    request_row,
    settings,
    signed,
    whole_line,
)
from tests.support import incoming as incoming_call
from voice import create_app
from voice.config import ConfigError, load_settings
from voice.simulator import ScriptedCaller

ARABIC = str(Path(__file__).resolve().parent.parent / "docs" / "examples" / "ar.toml")
AMIRA = "+19375550204"
BRUNO = "+19375550202"
REQUIRED = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_PHONE_NUMBER": LINE,
            "DISPATCH_TRANSFER_NUMBER": DISPATCH, "PUBLIC_BASE_URL": PUBLIC, "SECRET_KEY": "test-secret",
            "RETENTION_DAYS": "365"}


@pytest.fixture
def line_with(redis_url, database_url):
    with ExitStack() as stack:
        yield lambda **settings: stack.enter_context(whole_line(redis_url, database_url, **settings))


def says(twiml: str) -> list[tuple[str, str, str]]:
    """(text, voice, language) of every <Say> in a TwiML document, nested ones too."""
    return [(say.text or "", say.get("voice", ""), say.get("language", "")) for say in fromstring(twiml).iter("Say")]


def gathers(twiml: str) -> list[dict]:
    return [dict(gather.attrib) for gather in fromstring(twiml).iter("Gather")]


def greeting(app, client) -> str:
    response = signed(client, "/voice/incoming", incoming_call())
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_greeting_does_not_grow_for_a_program_that_adds_no_language(client):
    spoken = says(greeting(client.application, client))
    assert [text for text, _, _ in spoken] == [
        "Mediation Response Program.", "Para español, oprima 9.",
        "Is anyone hurt, in danger, or armed? Press 1. If everyone is safe, press 2. For dispatch, press 0."]
    assert [(voice, language) for _, voice, language in spoken] == [
        ("Polly.Joanna", "en-US"), ("Polly.Lupe", "es-US"), ("Polly.Joanna", "en-US")]


def test_a_language_file_adds_one_short_sentence_to_the_greeting_in_its_own_voice(redis_url, database_url):
    with fresh_app(settings(redis_url, database_url, LANGUAGE_FILES=ARABIC)) as app:
        spoken = says(greeting(app, app.test_client()))
    assert [text for text, _, _ in spoken][:2] == ["Mediation Response Program.", "Para español, oprima 9."]
    assert spoken[2] == ("للعربية، اضغط 8.", "Polly.Zeina", "arb")
    assert len(spoken) == 4 and spoken[3][0].startswith("Is anyone hurt")
    assert len(spoken[2][0].split()) <= 4  # one short sentence: "For Arabic, press 8."


def test_a_call_in_arabic_is_served_in_arabic_by_a_specialist_who_speaks_it(line_with):
    line = line_with(LANGUAGE_FILES=ARABIC)
    line.add_specialist("Bruno Mediator", BRUNO)  # English only: never rung for an Arabic caller
    amira = line.add_specialist("Amira Mediator", AMIRA, languages=("en", "ar"))

    record = line.phone.call_line(CALLER, ScriptedCaller(["8", "2", "1"]))
    line.settle()

    assert record.problems == []
    assert record.bridged_with == [AMIRA]
    assert [c.to for c in line.fake.calls] == [AMIRA]
    heard = record.heard()
    assert "هل هناك أحد مصاب أو في خطر أو مسلح؟" in heard  # the safety question again, in Arabic
    assert "ما موضوع المشكلة؟ للضوضاء، اضغط 1." in heard  # the kind of problem, in Arabic
    after_8 = next(e.body for e in record.exchanges if e.params.get("Digits") == "8")
    assert all((voice, language) == ("Polly.Zeina", "arb") for _, voice, language in says(after_8))
    assert gathers(after_8)[0]["language"] == "ar-EG"
    whisper = " ".join(what for who, what in line.fake.calls[0].record.transcript if who == f"to {amira.label}")
    assert "in Arabic" in whisper
    call = load_call(line.app, record.call_sid)
    assert (call.language, call.outcome, call.category) == ("ar", "bridged", "noise")


def test_nobody_on_who_speaks_it_the_caller_answers_the_callback_questions_in_arabic(line_with):
    line = line_with(LANGUAGE_FILES=ARABIC)
    line.add_specialist("Bruno Mediator", BRUNO)

    record = line.phone.call_line(CALLER, ScriptedCaller(["8", "2", "1", "دانة", "شارع ماين", "1", "موسيقى عالية",
                                                          "1"]))
    line.settle()

    assert record.problems == []
    assert line.fake.calls == []  # Bruno does not speak Arabic
    heard = record.heard()
    assert "لا يوجد مختص متاح للرد الآن." in heard and "من فضلك، قل اسمك الأول واسم العائلة." in heard
    assert "سيتصل بك مختص وساطة على الرقم" in heard and "شكراً لاتصالك بـبرنامج الاستجابة بالوساطة" in heard
    request = request_row(line.app)
    assert (request.language, request.status, request.call.caller_name) == ("ar", "pending", "دانة")
    (text,) = line.fake.texts
    assert text["body"].startswith("برنامج الاستجابة بالوساطة: سيتصل بك مختص وساطة")


@pytest.mark.parametrize(("change", "named"), [
    (lambda t: re.sub(r'(?m)^busy = .*\n', "", t), "missing prompt 'busy'"),
    (lambda t: t.replace('key = "8"', 'key = "9"'), "key must be one of 3, 4, 5, 6, 7, 8"),
    (lambda t: t.replace('code = "ar"', 'code = "xx"'), "'xx' is not an ISO 639-1 language code"),
    (lambda t: t.replace("رقم {position}، {wait}", "رقم {place}، {wait}"), "prompt 'position' uses {place}"),
    (lambda t: t.replace('speech_language = "ar-EG"', 'speech_language = "ar"'), "speech_language 'ar'"),
    (lambda t: t.replace('sorry = "عذراً', 'sorrry = "عذراً'), "missing prompt 'sorry'"),
    (lambda t: t + '\n[safety_words]\n"ربما" = "5"\n', "not valid TOML"),
])
def test_a_bad_language_file_is_refused_in_one_line_naming_what_is_wrong(tmp_path, change, named):
    path = tmp_path / "ar.toml"
    path.write_text(change(Path(ARABIC).read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED, "LANGUAGE_FILES": str(path)})
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"setting LANGUAGE_FILES: {path}")
    assert named in message


def test_a_missing_prompt_stops_start_up_naming_it(tmp_path, capsys):
    path = tmp_path / "ar.toml"
    path.write_text(re.sub(r'(?m)^long_wait = .*\n', "", Path(ARABIC).read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        create_app({**REQUIRED, "LANGUAGE_FILES": str(path)})
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"mediation-line: setting LANGUAGE_FILES: {path}: missing prompt 'long_wait'\n"


def test_two_languages_may_not_share_a_key_and_a_directory_stands_for_its_files(tmp_path):
    text = Path(ARABIC).read_text(encoding="utf-8")
    (tmp_path / "ar.toml").write_text(text, encoding="utf-8")
    (tmp_path / "fa.toml").write_text(text.replace('code = "ar"', 'code = "fa"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="key 8 already chooses Arabic"):
        load_settings({**REQUIRED, "LANGUAGE_FILES": str(tmp_path)})
    (tmp_path / "fa.toml").write_text(text.replace('code = "ar"', 'code = "fa"').replace('key = "8"', 'key = "7"')
                                      .replace('name = "Arabic"', 'name = "Persian"'), encoding="utf-8")
    loaded = load_settings({**REQUIRED, "LANGUAGE_FILES": str(tmp_path)})["LANGUAGES"]
    assert [(language.code, language.key) for language in loaded.offered()] == [("es", "9"), ("ar", "8"), ("fa", "7")]
    with pytest.raises(ConfigError, match="no such file"):
        load_settings({**REQUIRED, "LANGUAGE_FILES": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize(("given", "kinds"), [
    ("family, landlord", {"household", "landlord_tenant"}),
    ("household,landlord_tenant", {"household", "landlord_tenant"}),
    ("Landlord or tenant, pets", {"landlord_tenant", "pets_animals"}),
    ("", set()),
])
def test_complex_kinds_of_problem_are_read_by_their_names_or_stored_values(given, kinds):
    assert load_settings({**REQUIRED, "COMPLEX_CATEGORIES": given})["COMPLEX_CATEGORIES"] == kinds


def test_an_unknown_kind_of_problem_stops_start_up_naming_the_setting():
    with pytest.raises(ConfigError, match="setting COMPLEX_CATEGORIES must list kinds of problem"):
        load_settings({**REQUIRED, "COMPLEX_CATEGORIES": "family,landlrd"})
    with pytest.raises(ConfigError, match="setting PREFER_SECONDS must be at least 0"):
        load_settings({**REQUIRED, "PREFER_SECONDS": "-1"})


def test_a_language_may_not_take_the_key_that_offers_another_language_with_an_interpreter():
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED, "LANGUAGE_FILES": ARABIC, "INTERPRETER_NUMBER": "+19375550190",
                       "ANOTHER_LANGUAGE_KEY": "8"})
    assert str(caught.value) == "setting LANGUAGE_FILES: the key 8 of ar is ANOTHER_LANGUAGE_KEY's"
    loaded = load_settings({**REQUIRED, "LANGUAGE_FILES": ARABIC, "INTERPRETER_NUMBER": "+19375550190",
                            "ANOTHER_LANGUAGE_KEY": "7"})
    assert loaded["ANOTHER_LANGUAGE_KEY"] == "7"
