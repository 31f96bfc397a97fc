package scaler

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	forecast, actual, due, ape, seasons *prometheus.GaugeVec
	fit                                 *prometheus.HistogramVec
	promErrors, stale                   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	l := []string{"scaledobject"}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, l)
	}
	m := &metrics{
		forecast: gauge("refit_scaler_forecast", "The value answered to KEDA: the forecast one horizon ahead, floored at the current value."),
		actual:   gauge("refit_scaler_actual", "The query's current value."),
		due:      gauge("refit_scaler_forecast_due", "The model's forecast made one horizon ago for now (compare with refit_scaler_actual)."),
		ape:      gauge("refit_scaler_absolute_percentage_error", "|forecast due now - actual| / actual, as a ratio."),
		seasons:  gauge("refit_scaler_seasons", "Seasons modelled (0: too little history, answering the current value)."),
		fit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "refit_scaler_fit_seconds", Help: "Time to fit the model and forecast.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}, l),
		promErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refit_scaler_prometheus_errors_total", Help: "Failed history queries."}, l),
		stale:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refit_scaler_stale_answers_total", Help: "Answers of the last good forecast while Prometheus was unavailable."}, l),
	}
	for _, c := range []prometheus.Collector{m.forecast, m.actual, m.due, m.ape, m.seasons, m.fit, m.promErrors, m.stale} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// forget drops a scaled object's series (it is no longer asked for).
func (m *metrics) forget(k string) {
	for _, g := range []*prometheus.GaugeVec{m.forecast, m.actual, m.due, m.ape, m.seasons} {
		g.DeleteLabelValues(k)
	}
	m.fit.DeleteLabelValues(k)
	m.promErrors.DeleteLabelValues(k)
	m.stale.DeleteLabelValues(k)
}
