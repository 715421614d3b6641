"""The BGP session machine (sans-IO), its settings, timers and the collision pair."""
from .actions import Cause, State
from .events import Event
from .machine import TRANSITIONS, Session
from .open import check_open, open_message
from .pair import Keep, SessionPair, resolve_collision
from .settings import SessionSettings

__all__ = ["Session", "SessionPair", "SessionSettings", "State", "Cause", "Event", "TRANSITIONS",
           "Keep", "resolve_collision", "check_open", "open_message"]
