"""Local AWS stack fixtures (owned by the local stack work; see issue 3)."""
