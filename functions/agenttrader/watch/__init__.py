"""What operators watch: the last hour's health at a glance (the same thresholds as the alerts
in `monitoring/`) and the daily check that a backup of the database finished."""
