"""The call flow, in layers: each module imports only those below it (see the README's architecture)."""
