"""The end-to-end job: reference data -> training -> export -> LAMMPS MD -> stability analysis."""

from gnnff.workflow.pipeline import PipelineOptions, run_pipeline

__all__ = ["PipelineOptions", "run_pipeline"]
