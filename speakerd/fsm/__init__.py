"""The BGP session state machine (sans-IO), its timers and the collision rule."""
from .actions import Cause, State
from .collision import Keep, resolve_collision
from .config import SessionConfig, check_open
from .machine import Session

__all__ = ["Session", "SessionConfig", "State", "Cause", "Keep", "resolve_collision", "check_open"]
