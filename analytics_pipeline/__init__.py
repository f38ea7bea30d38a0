"""analytics_pipeline: social-media content metadata and daily metrics into a SQL warehouse."""
