// Package synth generates realistic datasets whose ground truth is known, for
// `refit gen`, end-to-end tests and benchmarks.
package synth

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// NoiseSD is the standard deviation, in dollars, of the Gaussian noise added
// to TruePrice in generated prices: the best RMSE any model can reach.
const NoiseSD = 25_000.0

// MinPrice is the floor of generated and true prices.
const MinPrice = 50_000.0

// Housing generates house sales in the layout of the King County data set.
// The price is a linear function of the numeric columns plus a city effect
// and a zip-code effect, plus noise: a linear model with one-hot city and
// statezip can learn it, while hashing 44 cities and 77 zip codes into 10
// buckets each mixes their effects up.
type Housing struct {
	Seed int64
	// ZeroPriceFraction of rows get price 0 (unknown, as in the real data).
	ZeroPriceFraction float64
	// BadRowFraction of rows get one malformed value (bedrooms "three", a
	// missing city, a missing field, ...).
	BadRowFraction float64
}

// HousingHeader is the header of a generated file, in the real column order.
func HousingHeader() []string {
	return []string{"date", "price", "bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors",
		"waterfront", "view", "condition", "sqft_above", "sqft_basement", "yr_built", "yr_renovated",
		"street", "city", "statezip", "country"}
}

// Positions in HousingHeader.
const (
	colDate = iota
	colPrice
	colBedrooms
	colBathrooms
	colSqftLiving
	colSqftLot
	colFloors
	colWaterfront
	colView
	colCondition
	colSqftAbove
	colSqftBasement
	colYrBuilt
	colYrRenovated
	colStreet
	colCity
	colStatezip
	colCountry
	numCols
)

// The numeric columns of the ground truth: HousingHeader positions
// colBedrooms..colYrRenovated.
const (
	firstNumeric = colBedrooms
	numNumeric   = colYrRenovated - colBedrooms + 1
)

// coefficients are the ground truth's dollars per unit of each numeric
// column, in HousingHeader order from bedrooms.
func coefficients() [numNumeric]float64 {
	return [numNumeric]float64{
		-12_000, // bedrooms: more rooms in the same space sell for less
		18_000,  // bathrooms
		180,     // sqft_living
		0.35,    // sqft_lot
		12_000,  // floors
		320_000, // waterfront
		38_000,  // view
		22_000,  // condition
		40,      // sqft_above: above-ground space is worth more than basement
		0,       // sqft_basement
		-900,    // yr_built: older houses sit in dearer neighbourhoods
		12,      // yr_renovated: 0 or the year, so a renovation adds ~24,000
	}
}

// intercept centres the typical house near the real median (~$480k).
const intercept = 1_715_000.0

func linearPrice(x *[numNumeric]float64, city, zip float64) float64 {
	p := intercept + city + zip
	for i, c := range coefficients() {
		p += c * x[i]
	}
	return p
}

// TruePrice is the noise-free price of a house given its column values as
// strings (at least the numeric columns, city and statezip).
func TruePrice(fields map[string]string) (float64, error) {
	header := HousingHeader()
	var x [numNumeric]float64
	for i := range x {
		name := header[firstNumeric+i]
		s, ok := fields[name]
		if !ok {
			return 0, fmt.Errorf("true price: missing %s", name)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, fmt.Errorf("true price: %s: %w", name, err)
		}
		x[i] = v
	}
	city := strings.TrimSpace(fields["city"])
	ce, ok := cityEffect(city)
	if !ok {
		return 0, fmt.Errorf("true price: unknown city %q", city)
	}
	statezip := strings.TrimSpace(fields["statezip"])
	if !knownZip(statezip) {
		return 0, fmt.Errorf("true price: unknown statezip %q", statezip)
	}
	return max(MinPrice, linearPrice(&x, ce, zipEffect(strings.TrimPrefix(statezip, "WA ")))), nil
}

// Independent random streams: the fault stream does not shift the houses, so
// the same seed gives the same houses whatever the fractions.
const (
	streamHouses = 0x686f75736573 // "houses"
	streamFaults = 0x6661756c7473 // "faults"
)

// Write writes the header and rows generated rows as CSV.
func (h Housing) Write(w io.Writer, rows int) error {
	if rows < 0 {
		return fmt.Errorf("synth: rows must not be negative, got %d", rows)
	}
	if h.ZeroPriceFraction < 0 || h.BadRowFraction < 0 || h.ZeroPriceFraction+h.BadRowFraction > 1 {
		return fmt.Errorf("synth: fractions must be non-negative and sum to at most 1, got %g and %g",
			h.ZeroPriceFraction, h.BadRowFraction)
	}
	g := newGenerator(h.Seed)
	faults := rand.New(rand.NewPCG(uint64(h.Seed), streamFaults))
	bw := bufio.NewWriterSize(w, 64<<10)
	line := appendRecord(make([]byte, 0, 256), HousingHeader())
	rec := make([]string, numCols)
	for i := 0; ; i++ {
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("synth: write: %w", err)
		}
		if i == rows {
			break
		}
		g.house(rec)
		n := numCols
		switch u := faults.Float64(); {
		case u < h.ZeroPriceFraction:
			rec[colPrice] = "0.0"
		case u < h.ZeroPriceFraction+h.BadRowFraction:
			n = corrupt(faults, rec)
		}
		line = appendRecord(line[:0], rec[:n])
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("synth: write: %w", err)
	}
	return nil
}

// corrupt makes one value malformed in a way any sane definition rejects,
// and returns how many fields to write.
func corrupt(r *rand.Rand, rec []string) int {
	switch r.IntN(8) {
	case 0:
		rec[colBedrooms] = "three"
	case 1:
		rec[colCity] = ""
	case 2:
		rec[colStatezip] = strings.TrimPrefix(rec[colStatezip], "WA ")
	case 3:
		rec[colSqftLiving] = ""
	case 4:
		rec[colPrice] = ""
	case 5:
		rec[colCondition] = "7"
	case 6:
		rec[colYrBuilt] = "19xx"
	default:
		return numCols - 1 // a field short
	}
	return numCols
}

func appendRecord(b []byte, rec []string) []byte {
	for i, f := range rec {
		if i > 0 {
			b = append(b, ',')
		}
		if strings.ContainsAny(f, ",\"\r\n") {
			b = append(b, '"')
			b = append(b, strings.ReplaceAll(f, `"`, `""`)...)
			b = append(b, '"')
		} else {
			b = append(b, f...)
		}
	}
	return append(b, '\n')
}

type generator struct {
	r      *rand.Rand
	cities []city
	cum    []int // cumulative city weights
}

func newGenerator(seed int64) *generator {
	g := &generator{r: rand.New(rand.NewPCG(uint64(seed), streamHouses)), cities: kingCounty()}
	total := 0
	for _, c := range g.cities {
		total += c.weight
		g.cum = append(g.cum, total)
	}
	return g
}

// firstSale is the first sale date of the real data; sales span 70 days.
func firstSale() time.Time { return time.Date(2014, time.May, 2, 0, 0, 0, 0, time.UTC) }

// house fills rec with one sale.
func (g *generator) house(rec []string) {
	r := g.r
	var x [numNumeric]float64
	set := func(col int, v float64) { x[col-firstNumeric] = v }

	// Living area: log-normal around 1,900 sqft, most between 1,500 and 2,500.
	living := math.Round(clamp(1900*math.Exp(0.38*r.NormFloat64()), 500, 8000)/10) * 10
	set(colSqftLiving, living)
	set(colBedrooms, clamp(math.Round(1+living/900+0.8*r.NormFloat64()), 1, 6))
	set(colBathrooms, clamp(math.Round(4*(0.5+living/1300+0.45*r.NormFloat64()))/4, 0.75, 4.5))
	set(colSqftLot, math.Round(clamp(7500*math.Exp(0.75*r.NormFloat64()), 1000, 100_000)))
	set(colFloors, pick(r, []float64{1, 1.5, 2, 2.5, 3, 3.5}, []float64{0.48, 0.10, 0.38, 0.01, 0.028, 0.002}))
	basement := 0.0
	if r.Float64() < 0.4 {
		basement = math.Round(living*(0.2+0.3*r.Float64())/10) * 10
	}
	set(colSqftBasement, basement)
	set(colSqftAbove, living-basement)
	waterfront := 0.0
	if r.Float64() < 0.01 {
		waterfront = 1
	}
	set(colWaterfront, waterfront)
	if waterfront == 1 {
		set(colView, pick(r, []float64{2, 3, 4}, []float64{0.1, 0.2, 0.7}))
	} else {
		set(colView, pick(r, []float64{0, 1, 2, 3, 4}, []float64{0.9, 0.02, 0.045, 0.025, 0.01}))
	}
	set(colCondition, pick(r, []float64{1, 2, 3, 4, 5}, []float64{0.005, 0.01, 0.63, 0.27, 0.085}))
	built := 1900 + r.IntN(115)
	if r.Float64() < 0.7 {
		built = 1945 + r.IntN(70)
	}
	set(colYrBuilt, float64(built))
	renovated := 0
	if r.Float64() < 0.2 {
		renovated = built + r.IntN(2014-built+1)
	}
	set(colYrRenovated, float64(renovated))

	c := g.cities[g.pickCity()]
	zip := c.zips[r.IntN(len(c.zips))]
	price := max(MinPrice, linearPrice(&x, c.effect, zipEffect(zip))+NoiseSD*r.NormFloat64())

	rec[colDate] = firstSale().AddDate(0, 0, r.IntN(70)).Format(time.DateTime)
	rec[colPrice] = strconv.FormatFloat(math.Round(price), 'f', 1, 64)
	for i, v := range x {
		col := firstNumeric + i
		switch col {
		case colBedrooms, colBathrooms, colFloors:
			rec[col] = strconv.FormatFloat(v, 'f', decimals(v), 64)
		default:
			rec[col] = strconv.FormatFloat(v, 'f', 0, 64)
		}
	}
	rec[colStreet] = street(r)
	rec[colCity] = c.name
	rec[colStatezip] = "WA " + zip
	rec[colCountry] = "USA"
}

func (g *generator) pickCity() int {
	u := g.r.IntN(g.cum[len(g.cum)-1])
	for i, c := range g.cum {
		if u < c {
			return i
		}
	}
	return len(g.cum) - 1
}

// decimals formats 3 as "3.0", 1.5 as "1.5" and 2.25 as "2.25", like the
// real data.
func decimals(v float64) int {
	if v*2 == math.Trunc(v*2) {
		return 1
	}
	return 2
}

func pick(r *rand.Rand, vals, weights []float64) float64 {
	u := r.Float64()
	for i, w := range weights {
		if u < w {
			return vals[i]
		}
		u -= w
	}
	return vals[len(vals)-1]
}

func clamp(v, lo, hi float64) float64 { return min(hi, max(lo, v)) }

// street makes addresses like "1234 NE 45th St" or "18810 Densmore Ave N".
func street(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(100 + r.IntN(29_900)))
	b.WriteByte(' ')
	dirs := []string{"NE", "NW", "SE", "SW", "N", "S", "E", "W"}
	if r.Float64() < 0.7 {
		if r.Float64() < 0.8 {
			b.WriteString(dirs[r.IntN(len(dirs))])
			b.WriteByte(' ')
		}
		b.WriteString(ordinal(1 + r.IntN(300)))
		b.WriteByte(' ')
		b.WriteString([]string{"St", "Ave", "Pl", "Ct", "Way", "Dr"}[r.IntN(6)])
		return b.String()
	}
	names := []string{"Main", "Lake Washington", "Greenwood", "Aurora", "Rainier", "Beacon", "Mercer",
		"Pine", "Cedar", "Maple", "Alder", "Madison", "Union", "Jackson", "Dexter", "Fremont", "Densmore",
		"Ravenna", "Roosevelt", "Holman", "Lakeside", "Forest", "Sunset", "Juanita", "Kennydale", "Meridian",
		"Military", "Pacific", "Novelty Hill", "Cascade", "Olympic", "Highland", "Hillcrest", "Evergreen",
		"Willows", "Bothell", "Issaquah-Hobart", "Avondale", "Woodinville-Duvall", "Des Moines Memorial"}
	b.WriteString(names[r.IntN(len(names))])
	b.WriteByte(' ')
	b.WriteString([]string{"Ave", "St", "Rd", "Dr", "Blvd", "Way", "Ln", "Pl"}[r.IntN(8)])
	if r.Float64() < 0.5 {
		b.WriteByte(' ')
		b.WriteString(dirs[r.IntN(len(dirs))])
	}
	return b.String()
}

func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}
