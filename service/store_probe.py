"""The feedback store's readiness probe: whether it answers, bounded so that /readyz always
answers within the health checks' time, with the driver's reason logged, not shown."""

from __future__ import annotations

import asyncio
import logging

from service.calibration.store import FeedbackStore
from service.redaction import ChangeLog, full_reason, public_reason

STORE_CHECK_S = 2.0
"""Longest /readyz waits on the feedback store. A server cut off by the network holds a
connection for libpq's 5 s timeout (a pool checkout 10 s), longer than the health checks give
/readyz (4 s: deploy/kubernetes' readinessProbe, the Dockerfile's HEALTHCHECK); a probe that
times out would take every replica out of the balancer, though the shared store is not a
blocking check. The embedded store answers after whatever store call holds its one
connection, so failing readiness for a busy one would take the process out of service: it is
given :data:`EMBEDDED_STORE_CHECK_S`, just under the probes' 4 s, so that a stuck one is still
said and logged."""
EMBEDDED_STORE_CHECK_S = 3.0


class StoreProbe:
    """Awaited by /readyz: None when the store answers, else why not."""

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store
        self.bound = STORE_CHECK_S if store.shared else EMBEDDED_STORE_CHECK_S
        # under the app's logger, where these lines were before they had a module of their own
        self.log = ChangeLog(logging.getLogger("service.app"), "readiness: feedback store")

    async def __call__(self) -> str | None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.ping), self.bound)
        except TimeoutError:
            self.log.failed(f"no answer within {self.bound:g} s")
            return f"feedback store unreachable: no answer within {self.bound:g} s"
        except Exception as exc:
            self.log.failed(full_reason(exc))
            return f"feedback store unreachable: {public_reason(exc)}"
        self.log.fine()
        return None
