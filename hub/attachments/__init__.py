"""Files in chats: content checks, re-encoding, storage, signed links, the scan hook."""
