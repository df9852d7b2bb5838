"""Security profile upgrades and the profile each station connects with."""
