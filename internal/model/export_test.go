package model

// KindNames lists the kinds, in table order (for the kind table's test).
func KindNames() []string {
	var ns []string
	for _, k := range kinds() {
		ns = append(ns, k.Name())
	}
	return ns
}
