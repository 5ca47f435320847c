"""Feedback → store → recalibration → thresholds: one room per job.

- :mod:`~service.calibration.labelling`: the labelling desk. Labels readings by reading id,
  time range or carried readings, submits them idempotently, builds the review queue.
- :mod:`~service.calibration.keeper`: the threshold keeper, the one writer of thresholds
  (the board the scoring path reads, versions, pendings, runs), behind one lock.
- :mod:`~service.calibration.recalibration`: one recalibration step per model (the rule
  itself and the task's timing are in :mod:`~service.calibration.recalibrator`).
- :mod:`~service.calibration.drift_monitor`: drift checks (the statistics are in
  :mod:`~service.calibration.drift`).
- :mod:`~service.calibration.records`, :mod:`~service.calibration.store`,
  :mod:`~service.calibration.sql`: the records, the store protocol and its errors, the
  SQLAlchemy implementation (SQLite or PostgreSQL).

Threading is decided here, in the rooms: every store call (blocking: SQLite fsyncs on
commit) runs in a worker thread via ``asyncio.to_thread`` inside a room method, and
everything that touches the scoring path's in-memory state (recent readings, the threshold
board, the model engine) runs on the event loop. Routes only ``await`` room methods and
never call ``to_thread``; the lifespan, which owns the store's lifetime, does so only for
its readiness ping and its close. The one deliberate exception is
:meth:`ThresholdKeeper.swap_models`, which blocks the loop so that no request sees a
reloaded model before its threshold.

The rooms are built in ``service.app.build_state`` and started (thresholds restored, the
recalibration task started) by the lifespan; no constructor starts anything.
"""
