"""Audio mixers: sound the output transport mixes under the bot (hold music, room tone)."""
