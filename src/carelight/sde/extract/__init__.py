"""The research-store extract: a project's de-identified research tables, built from the data
layer through the gate (purpose research), national data opt-outs applied in the gate's SQL,
one row per person under a per-project pseudonym. See ``run`` and docs/sde.md."""

from carelight.sde.extract.run import ExtractError, ExtractResult, extract_folder, run_extract

__all__ = ["ExtractError", "ExtractResult", "extract_folder", "run_extract"]
