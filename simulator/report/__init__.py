"""Writers: the only code that creates files (results, traces, figures, measurements)."""
