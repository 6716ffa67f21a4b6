"""The intake script as data: wording, order and choices, English and Spanish side by side.

The program can reword a prompt, reorder steps or change the categories here without touching the
call flow in `voice.intake`. `{program}`, `{number}` and `{hours}` are filled in when spoken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Keypad menu of what the conflict is about: digit -> (stored value, English, Spanish).
CATEGORIES: dict[str, tuple[str, str, str]] = {
    "1": ("noise", "noise", "ruido"),
    "2": ("neighbor_property", "a dispute with a neighbor or about property", "un conflicto con un vecino o sobre una propiedad"),
    "3": ("parking", "parking", "estacionamiento"),
    "4": ("pets_animals", "pets or animals", "mascotas o animales"),
    "5": ("household", "a conflict at home or in the family", "un conflicto en el hogar o la familia"),
    "6": ("landlord_tenant", "a landlord or tenant problem", "un problema entre propietario e inquilino"),
    "7": ("other", "something else", "otra cosa"),
}
CATEGORY_LABELS = {value: english for value, english, _ in CATEGORIES.values()}

# When the caller would like to be called back: digit -> (stored value, English, Spanish).
WINDOWS: dict[str, tuple[str, str, str]] = {
    "1": ("asap", "as soon as possible", "lo antes posible"),
    "2": ("morning", "in the morning", "en la mañana"),
    "3": ("afternoon", "in the afternoon", "en la tarde"),
    "4": ("evening", "in the evening", "en la noche"),
}


@dataclass(frozen=True)
class Step:
    """One question of the intake."""

    name: str
    # "dtmf", "speech" or "dtmf speech", as Twilio's <Gather input>.
    input: str
    prompt: dict[str, str]
    # Said before the prompt when the last answer was silence or did not fit.
    retry: dict[str, str]
    # How many times the question is asked in all before the default is taken.
    tries: int = 3
    num_digits: int | None = 1
    finish_on_key: str | None = None
    timeout: int = 6
    # Spoken words accepted in place of a key, per language.
    spoken_choices: dict[str, dict[str, str]] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)


NOT_A_NUMBER = {
    "en": "Sorry, that did not sound like a phone number.",
    "es": "Perdón, eso no parece un número de teléfono.",
}

SORRY = {
    "en": "Sorry, I didn't catch that.",
    "es": "Perdón, no le entendí.",
}

STEPS: dict[str, Step] = {
    "language": Step(
        name="language",
        # Speech too: a caller who says "español" should not have to find the keypad.
        input="dtmf speech",
        prompt={
            "en": "You have reached the {program}. For English, press 1.",
            "es": "Para español, oprima 2.",
        },
        retry=SORRY,
        tries=2,
        hints={"en": "English, Spanish, español, inglés", "es": "español, inglés, English, Spanish"},
    ),
    "safety": Step(
        name="safety",
        input="dtmf speech",
        prompt={
            "en": "First, your safety. If anyone is hurt or in danger right now, or if there is a weapon, press 1 or say yes. "
            "If everyone is safe, press 2 or say no.",
            "es": "Primero, su seguridad. Si alguien está herido o en peligro ahora mismo, o si hay un arma, oprima 1 o diga sí. "
            "Si todos están a salvo, oprima 2 o diga no.",
        },
        retry=SORRY,
        tries=3,
        spoken_choices={
            "en": {"yes": "1", "yeah": "1", "help": "1", "no": "2", "nope": "2", "safe": "2"},
            "es": {"sí": "1", "si": "1", "ayuda": "1", "no": "2", "seguro": "2", "seguros": "2"},
        },
        hints={"en": "yes, no", "es": "sí, no"},
    ),
    "category": Step(
        name="category",
        input="dtmf",
        prompt={
            "en": "What is the problem about? "
            + " ".join(f"For {en}, press {d}." for d, (_, en, _es) in CATEGORIES.items()),
            "es": "¿De qué se trata el problema? "
            + " ".join(f"Para {es}, oprima {d}." for d, (_, _en, es) in CATEGORIES.items()),
        },
        retry=SORRY,
        tries=2,
    ),
    "name": Step(
        name="name",
        input="speech",
        prompt={
            "en": "Please say your first and last name.",
            "es": "Por favor, diga su nombre y apellido.",
        },
        retry=SORRY,
        tries=2,
        num_digits=None,
        timeout=5,
    ),
    "location": Step(
        name="location",
        input="speech",
        prompt={
            "en": "Where is this happening? Please say the street address, or the nearest cross streets.",
            "es": "¿Dónde está pasando esto? Por favor, diga la dirección, o las calles más cercanas.",
        },
        retry=SORRY,
        tries=2,
        num_digits=None,
        timeout=6,
    ),
    "callback_number": Step(
        name="callback_number",
        input="dtmf",
        prompt={
            "en": "If we need to call you back, we will call {number}. Press 1 if that is the best number, "
            "or enter a different number now, followed by the pound key.",
            "es": "Si necesitamos llamarle, llamaremos al {number}. Oprima 1 si ese es el mejor número, "
            "o marque otro número ahora, seguido de la tecla de número.",
        },
        retry=NOT_A_NUMBER,
        tries=3,
        num_digits=None,
        finish_on_key="#",
        timeout=8,
    ),
    "callback_number_new": Step(
        name="callback_number_new",
        input="dtmf",
        prompt={
            "en": "Please enter the best phone number to reach you, with the area code, followed by the pound key.",
            "es": "Por favor, marque el mejor número para comunicarnos con usted, con el código de área, seguido de la tecla de número.",
        },
        retry=NOT_A_NUMBER,
        tries=3,
        num_digits=None,
        finish_on_key="#",
        timeout=8,
    ),
    "description": Step(
        name="description",
        input="speech",
        prompt={
            "en": "In a few words, please tell us what is going on.",
            "es": "En pocas palabras, por favor cuéntenos qué está pasando.",
        },
        retry=SORRY,
        tries=2,
        num_digits=None,
        timeout=6,
    ),
    "preference": Step(
        name="preference",
        input="dtmf",
        prompt={
            "en": "To talk with a mediation specialist now, press 1. If you would rather have a specialist call you back later, press 2.",
            "es": "Para hablar ahora con un especialista en mediación, oprima 1. Si prefiere que un especialista le llame más tarde, oprima 2.",
        },
        retry=SORRY,
        tries=2,
    ),
    "window": Step(
        name="window",
        input="dtmf",
        prompt={
            "en": "When is the best time to call you? "
            + " ".join(f"For {en}, press {d}." for d, (_, en, _es) in WINDOWS.items()),
            "es": "¿Cuándo es el mejor momento para llamarle? "
            + " ".join(f"Para {es}, oprima {d}." for d, (_, _en, es) in WINDOWS.items()),
        },
        retry=SORRY,
        tries=2,
    ),
}

# The order of the intake. `callback_number_new` and `window` are side branches taken from
# `callback_number` (no usable caller ID) and `preference` (the caller asked for a callback).
ORDER = ("language", "safety", "category", "name", "location", "callback_number", "description", "preference")

MESSAGES: dict[str, dict[str, str]] = {
    "escalate": {
        "en": "Please stay on the line. We are connecting you back to 911 dispatch now.",
        "es": "Por favor, no cuelgue. Le estamos comunicando de nuevo con la central de emergencias 911.",
    },
    "escalate_no_answer": {
        "en": "We could not confirm that everyone is safe, so we are connecting you back to 911 dispatch now.",
        "es": "No pudimos confirmar que todos estén a salvo, así que le estamos comunicando de nuevo con la central de emergencias 911.",
    },
    "connecting": {
        "en": "Thank you. We are connecting you with a mediation specialist now. Please stay on the line.",
        "es": "Gracias. Le estamos comunicando con un especialista en mediación. Por favor, no cuelgue.",
    },
    "still_trying": {
        "en": "Thank you for waiting. We are still trying to reach a specialist for you.",
        "es": "Gracias por esperar. Seguimos intentando comunicarle con un especialista.",
    },
    "callback_queued": {
        "en": "A mediation specialist will call you back at {number}, from {line}. {eta} Thank you for calling the {program}. Goodbye.",
        "es": "Un especialista en mediación le llamará al {number}, desde el {line}. {eta} Gracias por llamar al {program_es}. Adiós.",
    },
    "record_message": {
        "en": "We could not get a number to call you back. After the tone, please say your name, a phone number where we can reach you, "
        "and what is happening. Then hang up.",
        "es": "No pudimos obtener un número para llamarle. Después del tono, diga su nombre, un número de teléfono donde podamos "
        "comunicarnos con usted, y qué está pasando. Luego cuelgue.",
    },
    "message_saved": {
        "en": "Thank you. Your message has been saved, and a mediation specialist will follow up. Goodbye.",
        "es": "Gracias. Su mensaje ha sido guardado, y un especialista en mediación le dará seguimiento. Adiós.",
    },
    "after_bridge": {
        "en": "Thank you for calling the {program}. Goodbye.",
        "es": "Gracias por llamar al {program_es}. Adiós.",
    },
}
