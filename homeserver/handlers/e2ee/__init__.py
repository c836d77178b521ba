"""End-to-end encryption: device and one-time keys, cross-signing, key backup, device lists, to-device."""
