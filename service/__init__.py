"""Real-time anomaly scoring service for industrial sensor data."""
