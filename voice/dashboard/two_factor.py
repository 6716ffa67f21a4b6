"""Two-factor sign-in: TOTP secrets and their QR code, codes that work once, single-use recovery codes.

An account is enrolled once `totp_enrolled_at` is set; until then a `totp_secret` is only the one
being offered at enrolment. Every accepted code moves `totp_last_step` forward, so a code (or an older
one still inside the window) is never accepted twice.
"""

from __future__ import annotations

import secrets
import time

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from voice.clock import utcnow
from voice.models import RecoveryCode, User

# One step either side: a phone clock a little off, or a code typed as it turned over.
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: the codes are read off paper.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_hasher = PasswordHasher()


def enrolled(user: User) -> bool:
    return user.totp_enrolled_at is not None and bool(user.totp_secret)


def required(user: User, roles: tuple[str, ...]) -> bool:
    """Whether this account must sign in with a second step (REQUIRE_2FA_FOR, or enrolled already)."""
    return enrolled(user) or user.role in roles


def offer_secret(user: User) -> str:
    """A fresh secret for an enrolment that is not confirmed yet (each password step offers a new one)."""
    user.totp_secret = pyotp.random_base32()
    user.totp_enrolled_at = None
    user.totp_last_step = None
    return user.totp_secret


def provisioning_uri(user: User, issuer: str) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The otpauth:// link as an SVG QR code in a data: URL (the dashboard's CSP allows data: images)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=4)


def accept_code(db: Session, user: User, code: str, now: float | None = None) -> bool:
    """True once for a right code: its time step is recorded, and that step and older ones are refused after."""
    code = "".join((code or "").split())
    if not user.totp_secret or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(user.totp_secret)
    current = totp.timecode(time.time() if now is None else now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            # Conditional, so two requests with the same code at once cannot both win.
            moved = db.execute(update(User).where(
                User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            ).values(totp_last_step=step).execution_options(synchronize_session=False)).rowcount
            if moved == 1:
                user.totp_last_step = step
            return moved == 1
    return False


def confirm_enrolment(db: Session, user: User) -> list[str]:
    """The account is enrolled from now on; returns its new recovery codes, shown to the user this once."""
    user.totp_enrolled_at = utcnow()
    return issue_recovery_codes(db, user)


def issue_recovery_codes(db: Session, user: User) -> list[str]:
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        db.add(RecoveryCode(user_id=user.id, code_hash=_hasher.hash(raw)))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def use_recovery_code(db: Session, user: User, code: str) -> bool:
    """True once for each recovery code: it is marked used in the same update that accepts it."""
    raw = "".join(ch for ch in (code or "").lower() if ch.isalnum())
    if len(raw) != 10:
        return False
    unused = db.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).all()
    for row in unused:
        try:
            _hasher.verify(row.code_hash, raw)
        except (VerificationError, InvalidHashError):
            continue
        used = db.execute(update(RecoveryCode).where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                          .values(used_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        return used == 1
    return False


def recovery_codes_left(db: Session, user: User) -> int:
    return len(db.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id,
                                                        RecoveryCode.used_at.is_(None))).all())


def forget(db: Session, user: User) -> None:
    """Forget the account's authenticator and recovery codes; it enrols again at its next sign-in if it must."""
    user.totp_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
