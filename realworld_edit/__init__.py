"""Real-photo pairs edited with OpenCV (issue 4)."""
