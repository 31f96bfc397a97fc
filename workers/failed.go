package workers

// FailedRunKey is where the train worker records that a run cannot be
// trained (its spec does not fit the version's rows), with the reason: the
// promote worker, which decides a version once every spec it lists has a
// run, reads it so that one failing spec does not hold the others back.
func FailedRunKey(dataset, runID string) string {
	return "failed/" + dataset + "/" + runID + ".txt"
}
