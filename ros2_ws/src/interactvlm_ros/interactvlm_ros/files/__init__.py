"""Files on disk: writes that never leave a half-written file behind (:mod:`.atomic`)."""
