"""Small leaf helpers with no callpipe imports."""
