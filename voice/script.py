"""The intake script as data: wording, order and choices, English and Spanish side by side.

The program can reword a prompt, reorder steps or change the categories here without touching the
call flow in `voice.intake`. `{program}`, `{number}` and `{hours}` are filled in when spoken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Keypad menu of what the conflict is about: digit -> (stored value, English, Spanish). The menu reads
# these words as they are ("Noise, press 1. Parking, 3."), and every word is heard before a specialist is:
# one or two words each ("neighbors" covers neighbor and property disputes, "family" the household ones).
CATEGORIES: dict[str, tuple[str, str, str]] = {
    "1": ("noise", "noise", "ruido"),
    "2": ("neighbor_property", "neighbors", "vecinos"),
    "3": ("parking", "parking", "estacionamiento"),
    "4": ("pets_animals", "pets", "mascotas"),
    "5": ("household", "family", "familia"),
    "6": ("landlord_tenant", "landlord or tenant", "propietario o inquilino"),
    "7": ("other", "something else", "otra cosa"),
}
CATEGORY_LABELS = {value: english for value, english, _ in CATEGORIES.values()}
CATEGORY_LABELS_ES = {value: spanish for value, _, spanish in CATEGORIES.values()}
# The key that sends a caller back to 911 dispatch from any prompt, and the one that asks for a callback.
DISPATCH_KEY = "0"
SPANISH_KEY = "9"
CALLBACK_KEY = "2"

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
    # "dtmf", "speech" or "dtmf speech", as Twilio's <Gather input>. Every step takes keys, so 0 (dispatch)
    # and 2 (a callback, while holding) work at any prompt.
    input: str
    prompt: dict[str, str]
    # The phrase (a PHRASES name) said before the prompt when the last answer was silence or did not fit.
    retry: str
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

NOT_ALLOWED = {
    "en": "Sorry, this line can only call ordinary phone numbers in our area. Please enter a different number.",
    "es": "Lo sentimos, esta línea solo puede llamar a números comunes de nuestra zona. Marque otro número, por favor.",
}

SORRY = {
    "en": "Sorry, I didn't catch that.",
    "es": "Perdón, no le entendí.",
}

def _menu(language: str) -> str:
    items = list(CATEGORIES.items())
    if language == "es":
        first = f"¿De qué se trata? {items[0][1][2].capitalize()}, oprima {items[0][0]}."
        return " ".join([first, *(f"{es.capitalize()}, {d}." for d, (_, _en, es) in items[1:])])
    first = f"What is it about? {items[0][1][1].capitalize()}, press {items[0][0]}."
    return " ".join([first, *(f"{en.capitalize()}, {d}." for d, (_, en, _es) in items[1:])])


# Offered at the greeting only when the program sets ANOTHER_LANGUAGE_KEY (an interpreter joins the call).
ANOTHER_LANGUAGE = "Other languages, press {key}."

SAFETY_QUESTION = {
    "en": "Is anyone hurt, in danger, or armed? Press 1. If everyone is safe, press 2. For dispatch, press 0.",
    "es": "¿Alguien está herido, en peligro o armado? Oprima 1. Si todos están a salvo, oprima 2. "
    "Para la central, oprima 0.",
}
SAFETY_WORDS = {
    "en": {"yes": "1", "yeah": "1", "help": "1", "no": "2", "nope": "2", "safe": "2", "dispatch": "0", "police": "0",
           "officer": "0"},
    "es": {"sí": "1", "si": "1", "ayuda": "1", "no": "2", "seguro": "2", "seguros": "2", "policía": "0",
           "policia": "0", "central": "0"},
}

def _spoken(name: str, prompt: dict[str, str], timeout: int = 6, **more) -> Step:
    """A question answered in words (or a key): asked twice in all, then the default is taken."""
    return Step(name=name, input="dtmf speech", prompt=prompt, retry="sorry", tries=2, num_digits=1, timeout=timeout,
                **more)


def _keyed(name: str, prompt: dict[str, str], timeout: int = 6) -> Step:
    """A menu answered with one key: asked twice in all, then the default is taken."""
    return Step(name=name, input="dtmf", prompt=prompt, retry="sorry", tries=2, timeout=timeout)


def _phone_number(name: str, prompt: dict[str, str]) -> Step:
    """A phone number keyed in and ended with the pound key: asked three times in all."""
    return Step(name=name, input="dtmf", prompt=prompt, retry="not_a_number", tries=3, num_digits=None,
                finish_on_key="#", timeout=8)


STEPS: dict[str, Step] = {
    # The first thing every caller hears: who we are, Spanish on 9, then straight to danger (and dispatch on 0).
    "greeting": _spoken(
        "greeting",
        {"en": "{program}.", "es": "Para español, oprima 9."},
        timeout=5,
        spoken_choices=SAFETY_WORDS,
        hints={"en": "yes, no, español, Spanish", "es": "sí, no, español"},
    ),
    "safety": _spoken(
        "safety",
        SAFETY_QUESTION,
        timeout=5,
        spoken_choices=SAFETY_WORDS,
        hints={"en": "yes, no", "es": "sí, no"},
    ),
    "category": _keyed("category", {"en": _menu("en"), "es": _menu("es")}, timeout=5),
    "name": _spoken(
        "name",
        {
            "en": "Please say your first and last name.",
            "es": "Por favor, diga su nombre y apellido.",
        },
        timeout=5,
    ),
    "location": _spoken(
        "location",
        {
            "en": "Where is this happening? Please say the street address, or the nearest cross streets.",
            "es": "¿Dónde está pasando esto? Por favor, diga la dirección, o las calles más cercanas.",
        },
    ),
    "callback_number": _phone_number(
        "callback_number",
        {
            "en": "If we need to call you back, we will call {number}. Press 1 if that is the best number, "
            "or enter a different number now, followed by the pound key.",
            "es": "Si necesitamos llamarle, llamaremos al {number}. Oprima 1 si ese es el mejor número, "
            "o marque otro número ahora, seguido de la tecla de número.",
        },
    ),
    "callback_number_new": _phone_number(
        "callback_number_new",
        {
            "en": "Please enter the best phone number to reach you, with the area code, followed by the pound key.",
            "es": "Por favor, marque el mejor número para comunicarnos con usted, con el código de área, seguido de la tecla de número.",
        },
    ),
    "description": _spoken(
        "description",
        {
            "en": "In a few words, please tell us what is going on.",
            "es": "En pocas palabras, por favor cuéntenos qué está pasando.",
        },
    ),
    "window": _keyed(
        "window",
        {
            "en": "When is the best time to call? "
            + " ".join(f"For {en}, press {d}." for d, (_, en, _es) in WINDOWS.items()),
            "es": "¿Cuándo es el mejor momento para llamarle? "
            + " ".join(f"Para {es}, oprima {d}." for d, (_, _en, es) in WINDOWS.items()),
        },
    ),
}

# A dispatcher's warm handoff is at this step while they may still key the incident number.
INCIDENT_STEP = "incident"
# Asked of every caller before a specialist is rung or the caller waits: only what routing needs. Free
# specialists start ringing once "greeting" (with the safety question) is answered. A program may add a
# question here (e.g. ("greeting", "name", "category")); every word costs a caller who could be talking.
SHORT_PATH = ("greeting", "category")
# Asked of callers who wait, one at a time between the hold music, and of callers who will be called back,
# skipping what they already answered. A program may reorder these.
WAITING_QUESTIONS = ("name", "location", "callback_number", "description")
# The callback path adds when to call.
CALLBACK_QUESTIONS = (*WAITING_QUESTIONS, "window")

MESSAGES: dict[str, dict[str, str]] = {
    "escalate": {
        "en": "Connecting you to dispatch.",
        "es": "Le comunico con la central.",
    },
    "escalate_no_answer": {
        "en": "We could not confirm that everyone is safe. Connecting you to dispatch.",
        "es": "No pudimos confirmar que todos estén a salvo. Le comunico con la central.",
    },
    "closed": {
        "en": "The {program} is closed now. We are open {hours}. For an emergency, hang up and call 9 1 1. "
        "Stay on the line to leave your details, and a specialist will call you back when we open.",
        "es": "El {program_es} está cerrado ahora. Abrimos {hours}. Para una emergencia, cuelgue y llame al 9 1 1. "
        "Quédese en la línea para dejar sus datos, y un especialista le llamará cuando abramos.",
    },
    "nobody_on": {
        "en": "No specialist can answer right now. A few questions, then we will call you back.",
        "es": "Ningún especialista puede contestar ahora. Unas preguntas, y le llamaremos.",
    },
    "connecting": {
        "en": "Connecting you with a specialist.",
        "es": "Le comunico con un especialista.",
    },
    "cut_off": {
        "en": "Sorry, your specialist was cut off. Please stay on the line: you are next.",
        "es": "Disculpe, se cortó la llamada con su especialista. Quédese en la línea: usted es el siguiente.",
    },
    "not_connected": {
        "en": "Sorry, we could not connect you yet. Please stay on the line: you keep your place.",
        "es": "Disculpe, todavía no pudimos comunicarle. Quédese en la línea: conserva su lugar.",
    },
    "callback_screen": {
        "en": "This is the {program}, returning your call.",
        "es": "Le llama el {program_es}.",
    },
    "callback_press": {
        "en": "To talk with a mediation specialist now, press 1.",
        "es": "Para hablar ahora con un especialista en mediación, oprima 1.",
    },
    "callback_no_key": {
        "en": "This is the {program}, returning your call. We will try again later. Goodbye.",
        "es": "Le llamó el {program_es}. Volveremos a intentarlo más tarde. Adiós.",
    },
    "callback_cut_off": {
        "en": "Sorry, your specialist was cut off. We will call you right back. Goodbye.",
        "es": "Disculpe, se cortó la llamada con su especialista. Le volveremos a llamar enseguida. Adiós.",
    },
    "busy": {
        "en": "All our specialists are busy. You are number {position} in line. The wait is {wait}. "
        "For a call back instead, press 2 at any time.",
        "es": "Todos nuestros especialistas están ocupados. Usted es el número {position} en la fila. La espera es de "
        "{wait}. Para que le llamemos, oprima 2 en cualquier momento.",
    },
    "position": {
        "en": "You are number {position} in line, {wait}.",
        "es": "Usted es el número {position} en la fila, {wait}.",
    },
    "while_waiting": {
        "en": "While you wait:",
        "es": "Mientras espera:",
    },
    "long_wait": {
        "en": "Sorry for the wait. To keep your place and get a call back, press 2.",
        "es": "Disculpe la espera. Para conservar su lugar y recibir una llamada, oprima 2.",
    },
    "closing": {
        "en": "We are closing for today.",
        "es": "Estamos cerrando por hoy.",
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

# What a 911 dispatcher hears on a warm handoff (HANDOFF_NUMBER): dispatch speaks the program's working language,
# so these are not asked of a language file.
HANDOFF_WORDS: dict[str, dict[str, str]] = {
    "handoff": {
        "en": "Mediation line. Key the incident number and pound, or just wait.",
        "es": "Línea de mediación. Marque el número de incidente y la tecla de número, o espere.",
    },
    "handoff_nobody": {
        "en": "No specialist is free right now. Press 1 to leave the caller for a callback, or hang up to keep the call.",
        "es": "No hay ningún especialista libre ahora. Oprima 1 para dejar a la persona para una llamada de vuelta, "
        "o cuelgue para conservar la llamada.",
    },
}


# Said after the Dial to dispatch ends: if dispatch was busy or the transfer failed, the caller still knows what to do.
DISPATCH_UNREACHABLE = {
    "en": "If you did not reach dispatch, please hang up and dial 9 1 1 now.",
    "es": "Si no pudo comunicarse con la central, cuelgue y marque el 9 1 1 ahora.",
}

# When a caller waiting for a callback can expect it (`{minutes}`, `{hours}` filled in), and the texts sent to
# them. `{program}` is the program's name in the text's own language.
CALLBACK_WAIT = {
    "eta_at_time": {"en": "We will call you at the time you chose.",
                    "es": "Le llamaremos en el horario que eligió."},
    "eta_when_free": {"en": "We will call you as soon as a specialist is available.",
                      "es": "Le llamaremos en cuanto haya un especialista disponible."},
    "eta_15": {"en": "We expect to call you within about 15 minutes.",
               "es": "Esperamos llamarle en unos 15 minutos."},
    "eta_minutes": {"en": "We expect to call you within about {minutes} minutes.",
                    "es": "Esperamos llamarle en unos {minutes} minutos."},
    "eta_hours": {"en": "We expect to call you within about {hours} hours.",
                  "es": "Esperamos llamarle en unas {hours} horas."},
}
CALLBACK_TEXTS = {
    "text_callback_confirm": {
        "en": "{program}: a mediation specialist will call you back from {line}.",
        "es": "{program}: un especialista en mediación le llamará desde el {line}.",
    },
    "text_callback_unreachable": {
        "en": "{program}: we tried to call you back but could not reach you. Call us at {line}, {hours}.",
        "es": "{program}: intentamos llamarle sin éxito. Llámenos al {line}, {hours}.",
    },
}

# A wait as a person says it ("about a minute", never "about 1 minutes"), in MESSAGES' {wait}.
WAIT_WORDS = {
    "wait_one_minute": {"en": "about a minute", "es": "alrededor de un minuto"},
    "wait_minutes": {"en": "about {minutes} minutes", "es": "unos {minutes} minutos"},
}


def wait_words(minutes: int, language: str) -> str:
    """The wait in English or Spanish: "about a minute", "about 5 minutes"; "alrededor de un minuto"."""
    return WAIT_WORDS["wait_one_minute" if minutes <= 1 else "wait_minutes"][language].format(minutes=minutes)


# Every phrase by name: a step's `retry`, and the words the line says outside the steps and MESSAGES.
PHRASES: dict[str, dict[str, str]] = {
    "sorry": SORRY,
    "not_a_number": NOT_A_NUMBER,
    "not_allowed": NOT_ALLOWED,
    "dispatch_unreachable": DISPATCH_UNREACHABLE,
    **CALLBACK_WAIT,
    **CALLBACK_TEXTS,
    **WAIT_WORDS,
}
