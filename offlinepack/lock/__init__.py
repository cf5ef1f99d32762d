"""Lock requirements for a target: uv resolves, the target's installed versions are held."""

from offlinepack.lock.explain import Conflict
from offlinepack.lock.inputs import InputRequirement, read_requirements
from offlinepack.lock.lock import DroppedBackport, HeldBack, LockOptions, LockResult, lock_requirements
from offlinepack.pylock import DEFAULT_OPTIONAL, LockedFile, LockedPackage

__all__ = ["DEFAULT_OPTIONAL", "Conflict", "DroppedBackport", "HeldBack", "InputRequirement", "LockOptions",
           "LockResult", "LockedFile", "LockedPackage", "lock_requirements", "read_requirements"]
