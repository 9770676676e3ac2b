"""`imgproc dlq inspect | replay | purge`: what failed and why, put back what is fixable, clear the rest."""
