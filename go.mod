module github.com/anykernel/anykernel

go 1.26.3

require github.com/stretchr/testify v1.12.1 // indirect
