"""The `imgproc` command line: operate, run locally, package and deploy the pipeline."""
