"""Real-photo pairs edited with OpenCV: not built yet (the README lists what exists)."""
