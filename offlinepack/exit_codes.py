"""Exit codes, documented in one place (README links here)."""

OK = 0  # ready / valid / done
DEGRADED = 1  # doctor/bootstrap: ready with degradations; validate: submission invalid; run: some volumes failed
FAILED = 2  # not ready, or an OfflinepackError (bad input, conflict, ...)
