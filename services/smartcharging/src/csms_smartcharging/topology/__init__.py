"""Sites, groups, stations and EVSEs, and the limits in force on them over time."""
