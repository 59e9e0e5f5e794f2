"""Serving: what stands between many concurrent calls and one engine.

- :mod:`.scheduler`: slots for calls in flight and the policy that feeds the engine:
  :mod:`.row_worker` (iteration-level: rows join the running batch at every step, or go
  straight to a self-batching engine) or :mod:`.static_worker` (whole batches);
- :mod:`.model_loader`: loads the engine once, in the background;
- :mod:`.result_cache`: greedy results by the hash of everything that decides them;
- :mod:`.progress`: progress events and their delivery to callers.
"""

from m2_tools.serving.model_loader import LoadState, ModelLoader
from m2_tools.serving.progress import ProgressEvent
from m2_tools.serving.result_cache import ResultCache, cache_key
from m2_tools.serving.scheduler import Job, Scheduler, Slot

__all__ = [
    "Job",
    "LoadState",
    "ModelLoader",
    "ProgressEvent",
    "ResultCache",
    "Scheduler",
    "Slot",
    "cache_key",
]
