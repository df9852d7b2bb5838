"""Id tokens (RFID cards, eMAIDs, ...) and the authorization decisions made with them."""
