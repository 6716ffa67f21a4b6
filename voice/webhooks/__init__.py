"""Twilio-facing blueprints: every request signed, every answer valid TwiML, every fault a safe path."""
