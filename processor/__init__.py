"""The imgproc Lambda function: reconcile S3 renditions with their sources, batch by batch."""
