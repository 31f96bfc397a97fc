package synth

import "hash/fnv"

// city is one King County city: how often it appears (sales in the public
// data set of 4,600), its price effect in dollars, and its zip codes. Each
// zip code belongs to one city.
type city struct {
	name   string
	weight int
	effect float64
	zips   []string
}

// kingCounty returns the cities, Seattle first. A function rather than a
// package variable, so nothing can change the ground truth.
func kingCounty() []city {
	return []city{
		{"Seattle", 1573, 30_000, []string{"98103", "98105", "98106", "98107", "98108", "98112", "98115", "98116", "98117", "98118", "98119", "98122", "98125", "98126", "98133", "98136", "98144", "98178", "98199"}},
		{"Renton", 293, -20_000, []string{"98055", "98057", "98058", "98059"}},
		{"Bellevue", 286, 55_000, []string{"98005", "98006", "98007", "98008"}},
		{"Redmond", 235, 40_000, []string{"98052", "98053"}},
		{"Issaquah", 187, 30_000, []string{"98027", "98029"}},
		{"Kirkland", 187, 45_000, []string{"98033"}},
		{"Kent", 185, -45_000, []string{"98030", "98031", "98032"}},
		{"Auburn", 176, -60_000, []string{"98002", "98092"}},
		{"Sammamish", 175, 45_000, []string{"98074", "98075"}},
		{"Federal Way", 148, -55_000, []string{"98003", "98023"}},
		{"Shoreline", 123, 0, []string{"98177"}},
		{"Woodinville", 115, 20_000, []string{"98072", "98077"}},
		{"Maple Valley", 96, -25_000, []string{"98038"}},
		{"Mercer Island", 86, 80_000, []string{"98040"}},
		{"Burien", 74, -30_000, []string{"98146", "98148"}},
		{"Snoqualmie", 71, 5_000, []string{"98065"}},
		{"Kenmore", 66, 10_000, []string{"98028"}},
		{"Des Moines", 58, -40_000, []string{"98198"}},
		{"North Bend", 50, -10_000, []string{"98045"}},
		{"Covington", 43, -35_000, []string{"98042"}},
		{"Duvall", 42, -5_000, []string{"98019"}},
		{"Lake Forest Park", 36, 15_000, []string{"98155"}},
		{"Bothell", 33, 10_000, []string{"98011"}},
		{"Newcastle", 33, 25_000, []string{"98056"}},
		{"SeaTac", 29, -50_000, []string{"98188"}},
		{"Tukwila", 29, -55_000, []string{"98168"}},
		{"Vashon", 29, -5_000, []string{"98070"}},
		{"Enumclaw", 28, -50_000, []string{"98022"}},
		{"Carnation", 22, -10_000, []string{"98014"}},
		{"Normandy Park", 18, 5_000, []string{"98166"}},
		{"Clyde Hill", 11, 90_000, []string{"98004"}},
		{"Fall City", 11, 0, []string{"98024"}},
		{"Medina", 11, 95_000, []string{"98039"}},
		{"Black Diamond", 9, -45_000, []string{"98010"}},
		{"Ravensdale", 7, -35_000, []string{"98051"}},
		{"Pacific", 6, -70_000, []string{"98047"}},
		{"Algona", 5, -75_000, []string{"98001"}},
		{"Yarrow Point", 4, 85_000, []string{"98009"}},
		{"Skykomish", 3, -90_000, []string{"98288"}},
		{"Preston", 2, 0, []string{"98050"}},
		{"Milton", 2, -65_000, []string{"98354"}},
		{"Inglewood-Finn Hill", 1, 20_000, []string{"98034"}},
		{"Snoqualmie Pass", 1, -15_000, []string{"98068"}},
		{"Beaux Arts Village", 1, 75_000, []string{"98015"}},
	}
}

// zipEffect is a zip code's price effect: fixed, derived from the code, in
// -40,000..40,000 dollars by steps of 1,000.
func zipEffect(zip string) float64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(zip)) // never fails
	return float64(int(h.Sum32()%81)-40) * 1000
}

// cityEffect is a city's price effect; ok is false for an unknown city.
func cityEffect(name string) (effect float64, ok bool) {
	for _, c := range kingCounty() {
		if c.name == name {
			return c.effect, true
		}
	}
	return 0, false
}

// knownZip reports whether statezip ("WA 98103") is one of the zip codes.
func knownZip(statezip string) bool {
	for _, c := range kingCounty() {
		for _, z := range c.zips {
			if "WA "+z == statezip {
				return true
			}
		}
	}
	return false
}
