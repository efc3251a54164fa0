package adversary_test

import (
	"fmt"

	"github.com/echlab/echlab/lab/adversary"
)

func ExampleParseGrid() {
	grid, err := adversary.ParseGrid("none, block-sni Secret.Lab.Test. rst, strip-ech+block-doh, block-ech-size 176,144")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, col := range grid {
		fmt.Println(adversary.Join(col))
	}
	// Output:
	// none
	// block-sni secret.lab.test rst
	// strip-ech+block-doh
	// block-ech-size 144,176
}

func ExampleParse_error() {
	_, err := adversary.Parse("strip-ech+poison secret.lab.test")
	fmt.Println(err)
	// Output:
	// adversary: policy "poison secret.lab.test" in spec "strip-ech+poison secret.lab.test": missing argument ADDR (usage: poison NAME ADDR)
}
