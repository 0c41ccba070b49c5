"""Provider REST call control (hang-up, transfer, DTMF), one module per provider."""
