"""The pipeline engine: Pipeline, ParallelPipeline, PipelineTask, PipelineRunner."""
