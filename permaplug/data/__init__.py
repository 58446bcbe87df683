"""Data assembly: region mask, band aggregation, calendars, units, gap policy, soil-water split."""
