package anomaly

// GroupMissing is the alert policy for silent devices: it turns the
// KindMissing alerts (Registry.Sweep) of several metrics of one device
// into one device-wide alert, with Metric "" and Value 0, the highest
// score and the latest time of the alerts it replaces, in the place of the
// device's first alert: a device that went silent is one event, not one
// per metric. A device with a single alert keeps it as it is. as is not
// modified.
func GroupMissing(as []Alert) []Alert {
	if len(as) < 2 {
		return as
	}
	n := map[string]int{}
	for _, a := range as {
		n[a.Device]++
	}
	out := as[:0:0]
	merged := map[string]int{} // device → index in out
	for _, a := range as {
		if n[a.Device] == 1 {
			out = append(out, a)
			continue
		}
		i, ok := merged[a.Device]
		if !ok {
			a.Metric, a.Value = "", 0
			merged[a.Device] = len(out)
			out = append(out, a)
			continue
		}
		if a.Score > out[i].Score {
			out[i].Score = a.Score
		}
		if a.Time.After(out[i].Time) {
			out[i].Time = a.Time
		}
	}
	return out
}
