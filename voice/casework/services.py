"""The directory of services the program refers callers to (housing, legal aid, ...), which the coordinator
keeps, and the referrals a specialist gives on a call, each accepted or declined by the caller.

A service's number passes the toll-fraud policy (voice/phones.py) when it is saved, because a later feature puts
callers through to it. A service is never deleted, only made inactive, so the referrals given keep their name.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from voice import phones
from voice.clock import utcnow
from voice.models import Referral, Service

# What a service is for; the reports count referrals by these.
KINDS = {
    "housing": "Housing",
    "legal_aid": "Legal aid",
    "mental_health": "Mental health",
    "substance_use": "Substance use",
    "food": "Food",
    "shelter": "Shelter",
    "victim_services": "Victim services",
    "youth_family": "Youth and family",
    "benefits": "Benefits",
    "other": "Other",
}
NAME_MAX = 120


class ServiceError(ValueError):
    """A directory change that cannot be made; the message says why."""


def directory(db: Session, only_active: bool = False) -> list[Service]:
    """Every service, active first, by name."""
    query = select(Service).order_by(Service.active.desc(), Service.name)
    if only_active:
        query = query.where(Service.active.is_(True))
    return list(db.scalars(query))


def named(db: Session, name: str) -> Service | None:
    return db.scalar(select(Service).where(Service.name == name))


def checked(name: str, kind: str, raw_phone: str, region: str, countries: Iterable[str]) -> tuple[str, str, str]:
    """The name, kind and E.164 number of a service as typed, or ServiceError saying what is wrong."""
    name = " ".join((name or "").split())[:NAME_MAX]
    if not name:
        raise ServiceError("Give the service a name.")
    if kind not in KINDS:
        raise ServiceError("Choose what kind of service it is.")
    check = phones.check_callable(raw_phone, region, countries)
    if check.number is None:
        raise ServiceError(f"The number {raw_phone!r} {check.reason()}.")
    return name, kind, check.number


def add(db: Session, name: str, kind: str, phone: str) -> Service:
    """A new service in the directory (the values already `checked`)."""
    if db.scalar(select(Service.id).where(Service.name == name)) is not None:
        raise ServiceError(f"{name} is already in the directory.")
    service = Service(name=name, kind=kind, phone=phone, active=True)
    db.add(service)
    db.flush()
    return service


def update(db: Session, service: Service, name: str, kind: str, phone: str, active: bool) -> Service:
    other = db.scalar(select(Service.id).where(Service.name == name, Service.id != service.id))
    if other is not None:
        raise ServiceError(f"Another service is already called {name}.")
    service.name, service.kind, service.phone, service.active = name, kind, phone, active
    db.flush()
    return service


# --- referrals given on a call ------------------------------------------------------------------------------


def referrals_of(db: Session, call_id: int) -> list[Referral]:
    return list(db.scalars(select(Referral).where(Referral.call_id == call_id).order_by(Referral.id)))


def give(db: Session, call_id: int, service: Service, accepted: bool, user_id: int | None) -> Referral:
    """Record that the caller was referred to `service` and whether they accepted; again for the same service
    changes the answer."""
    if not service.active:
        raise ServiceError(f"{service.name} is no longer in the directory.")
    referral = db.scalar(select(Referral).where(Referral.call_id == call_id, Referral.service_id == service.id))
    if referral is None:
        referral = Referral(call_id=call_id, service_id=service.id, accepted=accepted, given_by_id=user_id)
        db.add(referral)
    else:
        referral.accepted, referral.given_at, referral.given_by_id = accepted, utcnow(), user_id
    db.flush()
    return referral


def withdraw(db: Session, referral: Referral) -> None:
    """A referral recorded by mistake."""
    db.delete(referral)
