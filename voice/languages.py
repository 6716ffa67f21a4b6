"""The languages callers are served in: English and Spanish as `voice.script` words them, and any more the
program adds as data, one TOML file each (the LANGUAGE_FILES setting), checked at start-up.

A language file (docs/routing.md explains each field; docs/examples/ar.toml is a whole one):

    code = "ar"                    the ISO 639-1 code; also the skill of a specialist who speaks it
    name = "Arabic"                in English: the specialist's whisper, the dashboard
    key = "8"                      the greeting's key for it (3 to 8: 0 is dispatch, 1 and 2 answer the safety
                                   question, 9 is Spanish)
    greeting = "..."               the one sentence the greeting gains, said in the language's own voice
    voice, say_language            <Say voice> and <Say language>
    speech_language                <Gather language>
    program_name, program_hours    the program's name and hours, as callers hear them in the language
    [prompts]                      every prompt English has (`prompt_names()`), by name
    [safety_words], [hints]        optional: spoken answers to the safety question (word = key); speech hints
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from voice.script import MESSAGES, PHRASES, SPANISH_KEY, STEPS

# ISO 639-1: every two-letter language code. A skill of two letters is a language, and must be one of these.
_ISO_639_1_CODES = """
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en
eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv
ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne
ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st
su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"""
ISO_639_1 = frozenset(_ISO_639_1_CODES.split())

# Keys a program's language may take at the greeting: 0 is dispatch, 1 and 2 answer the safety question that the
# greeting asks, and 9 is Spanish.
FREE_KEYS = ("3", "4", "5", "6", "7", "8")
BUILT_IN_CODES = ("en", "es")

# https://www.twilio.com/docs/voice/twiml/say: voice is man, woman, or a Twilio-supported Amazon Polly ("Polly.Zeina")
# or Google ("Google.ar-XA-Standard-A") voice, and language a language/locale the voice speaks; the voices and
# their language values are listed at https://www.twilio.com/docs/voice/twiml/say/text-speech (Arabic: Polly.Zeina,
# language "arb"). A wrong pair fails the <Say>, so the file names both.
_VOICE = re.compile(r"^(man|woman|alice|(Polly|Google)\.[\w.-]+)$")
_SAY_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,4})*$")
# https://www.twilio.com/docs/voice/twiml/gather#languagetags: <Gather language> takes a BCP-47 tag with its region
# ("ar-EG", "cmn-Hans-CN"); a bare "ar" is invalid (https://www.twilio.com/docs/api/errors/13512).
_SPEECH_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?-[A-Z]{2}$")
_FIELDS = ("code", "name", "key", "greeting", "voice", "say_language", "speech_language", "program_name",
           "program_hours")


class LanguageFileError(ValueError):
    """A language file the line cannot use; the message is one line naming the file and what is wrong."""


@dataclass(frozen=True)
class Language:
    """Everything the line says and hears in one language."""

    code: str
    name: str
    # The key that chooses it at the greeting; None for English, the language every call starts in.
    key: str | None
    # What it adds to the greeting, in its own voice ("{program}." for English, "Para español, oprima 9.").
    greeting: str
    voice: str
    say_language: str
    speech_language: str
    program_name: str
    program_hours: str
    # Every prompt, message and phrase by name (a step's name, a MESSAGES name, a PHRASES name).
    prompts: Mapping[str, str]
    # Per step: spoken words accepted in place of a key, and speech hints.
    spoken_choices: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    hints: Mapping[str, str] = field(default_factory=dict)
    # Words that choose it when said at the greeting (lower case, matched anywhere in what was heard).
    said_as: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    """The program's languages: English, Spanish, then those its language files add, in their order."""

    languages: tuple[Language, ...]

    def get(self, code: str | None) -> Language:
        """The language with this code; English for a code the line does not serve (nothing fails on it)."""
        return next((language for language in self.languages if language.code == code), self.languages[0])

    def offered(self) -> tuple[Language, ...]:
        """The languages the greeting offers with a key, in the order it says them."""
        return tuple(language for language in self.languages if language.key)

    def added(self) -> tuple[Language, ...]:
        return tuple(language for language in self.languages if language.code not in BUILT_IN_CODES)

    def codes(self) -> tuple[str, ...]:
        return tuple(language.code for language in self.languages)

    def names(self) -> dict[str, str]:
        return {language.code: language.name for language in self.languages}


def catalogue() -> Catalogue:
    """The app's languages (built at start-up from the settings)."""
    return current_app.config["LANGUAGES"]


def of(code: str | None) -> Language:
    """One of the app's languages; English for a code it does not serve."""
    return catalogue().get(code)


# --- English and Spanish, from voice/script.py -----------------------------------------------------------------


def script_prompts(code: str) -> dict[str, str]:
    """Every prompt `voice.script` has in `code`, by name (the greeting is the language's `greeting`)."""
    prompts = {name: step.prompt[code] for name, step in STEPS.items() if name != "greeting"}
    prompts.update({name: words[code] for name, words in MESSAGES.items()})
    prompts.update({name: words[code] for name, words in PHRASES.items()})
    return prompts


def prompt_names() -> tuple[str, ...]:
    """The prompts a language file must give: every one English has."""
    return tuple(script_prompts("en"))


# name, key, <Say language>, <Gather language>, and the settings holding its voice, program name and hours.
_BUILT_IN = {
    "en": ("English", None, "en-US", "en-US", "VOICE_EN", "PROGRAM_NAME", "PROGRAM_HOURS", ("english",)),
    "es": ("Spanish", SPANISH_KEY, "es-US", "es-US", "VOICE_ES", "PROGRAM_NAME_ES", "PROGRAM_HOURS_ES",
           ("espa", "spanish")),
}


def built_in(code: str, settings: Mapping) -> Language:
    name, key, say_language, speech_language, voice, program, hours, said_as = _BUILT_IN[code]
    return Language(
        code=code, name=name, key=key, greeting=STEPS["greeting"].prompt[code], voice=settings[voice],
        say_language=say_language, speech_language=speech_language, program_name=settings[program],
        program_hours=settings[hours], prompts=script_prompts(code),
        spoken_choices={n: step.spoken_choices[code] for n, step in STEPS.items() if code in step.spoken_choices},
        hints={n: step.hints[code] for n, step in STEPS.items() if code in step.hints}, said_as=said_as)


def build_catalogue(settings: Mapping, added: tuple[Language, ...]) -> Catalogue:
    return Catalogue((*(built_in(code, settings) for code in BUILT_IN_CODES), *added))


# --- the program's languages, from files ------------------------------------------------------------------------


def language_files(paths: list[str] | tuple[str, ...]) -> list[Path]:
    """The files named (a directory stands for every .toml file in it, by name), in the order given."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files += sorted(path.glob("*.toml"))
        elif path.is_file():
            files.append(path)
        else:
            raise LanguageFileError(f"{item}: no such file or directory")
    return files


def load_languages(paths: list[str] | tuple[str, ...]) -> tuple[Language, ...]:
    """Read and check every language file; LanguageFileError names the first problem found."""
    loaded: list[Language] = []
    for path in language_files(paths):
        language = load_language(path)
        for other in loaded:
            if other.code == language.code:
                raise LanguageFileError(f"{path}: language {language.code!r} is already given by another file")
            if other.key == language.key:
                raise LanguageFileError(f"{path}: key {language.key} already chooses {other.name}")
        loaded.append(language)
    return tuple(loaded)


def load_language(path: Path) -> Language:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise LanguageFileError(f"{path} is not valid TOML: {' '.join(str(error).split())}") from None
    for name in _FIELDS:
        if not isinstance(data.get(name), str | int) or not str(data[name]).strip():
            raise LanguageFileError(f"{path}: missing {name}")
    code = str(data["code"]).strip().lower()
    if code in BUILT_IN_CODES:
        raise LanguageFileError(f"{path}: {code} is built in; change its words in voice/script.py")
    if code not in ISO_639_1:
        raise LanguageFileError(f"{path}: code {code!r} is not an ISO 639-1 language code (two letters, e.g. ar)")
    key = str(data["key"]).strip()
    if key not in FREE_KEYS:
        raise LanguageFileError(f"{path}: key must be one of {', '.join(FREE_KEYS)} (0, 1, 2 and 9 are taken), "
                                f"got {key!r}")
    text = {name: str(data[name]).strip() for name in _FIELDS}
    if not _VOICE.match(text["voice"]):
        raise LanguageFileError(f"{path}: voice {text['voice']!r} is not a Twilio voice (e.g. Polly.Zeina)")
    if not _SAY_LANGUAGE.match(text["say_language"]):
        raise LanguageFileError(f"{path}: say_language {text['say_language']!r} is not a language code (e.g. arb)")
    if not _SPEECH_LANGUAGE.match(text["speech_language"]):
        raise LanguageFileError(f"{path}: speech_language {text['speech_language']!r} is not a language tag with "
                                "its region (e.g. ar-EG)")
    return Language(
        code=code, name=text["name"], key=key, greeting=text["greeting"], voice=text["voice"],
        say_language=text["say_language"], speech_language=text["speech_language"],
        program_name=text["program_name"], program_hours=text["program_hours"],
        prompts=_prompts(path, data.get("prompts")), spoken_choices=_safety_words(path, data.get("safety_words")),
        hints=_hints(path, data.get("hints")), said_as=(text["name"].lower(),))


def _table(path: Path, value: object, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LanguageFileError(f"{path}: {name} must be a table ([{name}])")
    return value


def _prompts(path: Path, value: object) -> dict[str, str]:
    given = _table(path, value, "prompts")
    english, spanish = script_prompts("en"), script_prompts("es")
    names = tuple(english)  # every prompt English has (prompt_names)
    for name in names:
        if not isinstance(given.get(name), str) or not given[name].strip():
            raise LanguageFileError(f"{path}: missing prompt {name!r}")
    for name in given:
        if name not in names:
            raise LanguageFileError(f"{path}: unknown prompt {name!r} (the prompts are listed in docs/routing.md)")
    for name in names:
        allowed = _placeholders(english[name]) | _placeholders(spanish[name]) | {"program"}
        try:
            used = _placeholders(given[name])
        except ValueError:
            raise LanguageFileError(f"{path}: prompt {name!r} has a stray {{ or }}") from None
        if used - allowed:
            raise LanguageFileError(f"{path}: prompt {name!r} uses {{{sorted(used - allowed)[0]}}}; it may use "
                                    f"{', '.join('{' + p + '}' for p in sorted(allowed))}")
    return {name: given[name].strip() for name in names}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _safety_words(path: Path, value: object) -> dict[str, dict[str, str]]:
    words = {}
    for word, key in _table(path, value, "safety_words").items():
        if str(key) not in {"0", "1", "2"}:
            raise LanguageFileError(f"{path}: safety word {word!r} must stand for key 1 (danger), 2 (safe) or 0 "
                                    f"(dispatch), got {key!r}")
        words[str(word).strip().lower()] = str(key)
    # The safety question is asked at the greeting (in English) and again after the language is chosen.
    return {"greeting": words, "safety": words} if words else {}


def _hints(path: Path, value: object) -> dict[str, str]:
    hints = _table(path, value, "hints")
    for name in hints:
        if name not in STEPS:
            raise LanguageFileError(f"{path}: hints for unknown step {name!r}")
    return {name: str(text) for name, text in hints.items()}
