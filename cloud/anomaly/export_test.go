package anomaly

// NoisySeries is the benchmarks' series (see noisySeries).
var NoisySeries = noisySeries
